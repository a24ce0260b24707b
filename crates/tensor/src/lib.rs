//! clip-tensor: a minimal tensor type over clip-kernels.
