//! Model configuration: the sizes of the two towers, with named constructors for the
//! published ViT CLIP models and the one validation every configuration goes through,
//! whether read from a config file or inferred from tensor shapes ([`ClipConfig::validate`]).
//!
//! Not here: reading config files or shapes (`checkpoint/`), loading tensors (`loader.rs`).

use crate::Activation;

/// The vision transformer's sizes (field names as in Hugging Face's `CLIPVisionConfig`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VisionConfig {
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads (the head width is `hidden_size / num_attention_heads`).
    pub num_attention_heads: usize,
    /// Side of the square input image, in pixels.
    pub image_size: usize,
    /// Side of a square patch, in pixels.
    pub patch_size: usize,
    /// Input channels (3: RGB).
    pub num_channels: usize,
    /// The layer norms' epsilon.
    pub layer_norm_eps: f32,
    /// The MLP's activation.
    pub hidden_act: Activation,
    /// How the image is pooled after the last layer.
    pub pool: VisionPool,
    /// A layer norm before the first layer (open_clip's `no_ln_pre` turns it off).
    pub ln_pre: bool,
    /// The final layer norm after pooling instead of before (open_clip's
    /// `final_ln_after_pool`; the same for class-token pooling).
    pub final_ln_after_pool: bool,
    /// Layer scale (open_clip's `ls_init_value`): each residual branch multiplied by a
    /// learned vector `ls_1` / `ls_2` before it is added.
    pub layer_scale: bool,
}

/// How the vision tower pools its last hidden state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VisionPool {
    /// The class token (CLIP's, open_clip's `tok`).
    #[default]
    ClassToken,
    /// The mean of the patch tokens (open_clip's `avg`).
    MeanOfPatches,
}

/// Which position of a sequence the text tower pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TextPool {
    /// The largest id: the end-of-text token, the largest id of CLIP's vocabulary (OpenAI's
    /// rule, HF's when `eos_token_id == 2`, open_clip's `argmax`).
    #[default]
    Argmax,
    /// The first occurrence of this id (HF's `eos_token_id`, open_clip's `eos` with
    /// `eos_id`), else the last position.
    FirstOf(u32),
    /// Position 0 (open_clip's `first`).
    First,
    /// The last position given (open_clip's `last`: with `clip.tokenize`'s padding, the last
    /// of the context).
    Last,
}

/// The text transformer's sizes (field names as in Hugging Face's `CLIPTextConfig`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TextConfig {
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Token ids are `0..vocab_size`.
    pub vocab_size: usize,
    /// The context length (77 for CLIP).
    pub max_position_embeddings: usize,
    /// The layer norms' epsilon.
    pub layer_norm_eps: f32,
    /// The MLP's activation.
    pub hidden_act: Activation,
    /// Which position is pooled.
    pub pool: TextPool,
    /// Layer scale (open_clip's `ls_init_value`), as in the vision tower.
    pub layer_scale: bool,
}

/// A whole CLIP model's configuration.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClipConfig {
    /// The image tower.
    pub vision: VisionConfig,
    /// The text tower.
    pub text: TextConfig,
    /// Width of the shared embedding space.
    pub projection_dim: usize,
}

impl VisionConfig {
    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size.max(1)
    }

    /// Tokens per image: the patches and the class token.
    pub fn num_positions(&self) -> usize {
        self.grid() * self.grid() + 1
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }
}

impl TextConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }
}

/// Upper bounds that no CLIP comes near (bigG/14: width 1664, 48 layers, 257 positions), so
/// that a hostile config cannot make the loader size loops or buffers by absurd numbers.
const MAX_WIDTH: usize = 1 << 16;
const MAX_LAYERS: usize = 1 << 10;
const MAX_VOCAB: usize = 1 << 24;
const MAX_CONTEXT: usize = 1 << 16;
const MAX_IMAGE_SIZE: usize = 1 << 14;

impl ClipConfig {
    fn vit(
        width: usize,
        layers: usize,
        patch: usize,
        image: usize,
        text_width: usize,
        embed: usize,
    ) -> ClipConfig {
        ClipConfig {
            vision: VisionConfig {
                hidden_size: width,
                intermediate_size: 4 * width,
                num_hidden_layers: layers,
                num_attention_heads: width / 64,
                image_size: image,
                patch_size: patch,
                num_channels: 3,
                layer_norm_eps: 1e-5,
                hidden_act: Activation::QuickGelu,
                pool: VisionPool::ClassToken,
                ln_pre: true,
                final_ln_after_pool: false,
                layer_scale: false,
            },
            text: TextConfig {
                hidden_size: text_width,
                intermediate_size: 4 * text_width,
                num_hidden_layers: 12,
                num_attention_heads: text_width / 64,
                vocab_size: 49408,
                max_position_embeddings: 77,
                layer_norm_eps: 1e-5,
                hidden_act: Activation::QuickGelu,
                pool: TextPool::Argmax,
                layer_scale: false,
            },
            projection_dim: embed,
        }
    }

    /// openai/clip-vit-base-patch32.
    pub fn vit_base_patch32() -> ClipConfig {
        Self::vit(768, 12, 32, 224, 512, 512)
    }

    /// openai/clip-vit-base-patch16.
    pub fn vit_base_patch16() -> ClipConfig {
        Self::vit(768, 12, 16, 224, 512, 512)
    }

    /// openai/clip-vit-large-patch14.
    pub fn vit_large_patch14() -> ClipConfig {
        Self::vit(1024, 24, 14, 224, 768, 768)
    }

    /// openai/clip-vit-large-patch14-336.
    pub fn vit_large_patch14_336() -> ClipConfig {
        Self::vit(1024, 24, 14, 336, 768, 768)
    }

    /// OpenAI's four ViT releases, by name: the only configurations the loader takes from
    /// tensor shapes alone (their activation, QuickGELU, cannot be seen in the shapes).
    pub fn openai_releases() -> [(&'static str, ClipConfig); 4] {
        [
            ("ViT-B/32", Self::vit_base_patch32()),
            ("ViT-B/16", Self::vit_base_patch16()),
            ("ViT-L/14", Self::vit_large_patch14()),
            ("ViT-L/14@336px", Self::vit_large_patch14_336()),
        ]
    }

    /// Reads a Hugging Face `config.json` (missing fields take `CLIPConfig`'s defaults) and
    /// validates it.
    pub fn from_hf_json(path: &std::path::Path) -> crate::Result<ClipConfig> {
        let bytes = std::fs::read(path).map_err(|e| crate::Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        crate::checkpoint::hf::read_config(&bytes, path)
    }

    /// Checks every size is positive and within bounds, that the sizes agree with each
    /// other, and that the products the loader computes cannot overflow. Every configuration
    /// passes through here before any tensor is read or any buffer is sized by it.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let v = &self.vision;
        let t = &self.text;
        let sizes = [
            ("vision hidden_size", v.hidden_size, MAX_WIDTH),
            (
                "vision intermediate_size",
                v.intermediate_size,
                MAX_WIDTH * 8,
            ),
            ("vision num_hidden_layers", v.num_hidden_layers, MAX_LAYERS),
            (
                "vision num_attention_heads",
                v.num_attention_heads,
                MAX_WIDTH,
            ),
            ("image_size", v.image_size, MAX_IMAGE_SIZE),
            ("patch_size", v.patch_size, MAX_IMAGE_SIZE),
            ("text hidden_size", t.hidden_size, MAX_WIDTH),
            ("text intermediate_size", t.intermediate_size, MAX_WIDTH * 8),
            ("text num_hidden_layers", t.num_hidden_layers, MAX_LAYERS),
            ("text num_attention_heads", t.num_attention_heads, MAX_WIDTH),
            ("vocab_size", t.vocab_size, MAX_VOCAB),
            (
                "max_position_embeddings",
                t.max_position_embeddings,
                MAX_CONTEXT,
            ),
            ("projection_dim", self.projection_dim, MAX_WIDTH),
        ];
        for (name, value, max) in sizes {
            if value == 0 {
                return Err(format!("{name} is 0; it must be positive"));
            }
            if value > max {
                return Err(format!("{name} = {value} is larger than {max}"));
            }
        }
        for (name, eps) in [
            ("vision layer_norm_eps", v.layer_norm_eps),
            ("text layer_norm_eps", t.layer_norm_eps),
        ] {
            // In f32: a positive f64 like 1e-300 rounds to 0 here and would divide by zero.
            if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
                return Err(format!(
                    "{name} = {eps:e} (as f32) is not in (0, 1): a layer norm would divide by \
                     zero or distort its input"
                ));
            }
        }
        if !v.hidden_size.is_multiple_of(v.num_attention_heads) {
            return Err(format!(
                "vision hidden_size {} is not a multiple of {} heads",
                v.hidden_size, v.num_attention_heads
            ));
        }
        if !t.hidden_size.is_multiple_of(t.num_attention_heads) {
            return Err(format!(
                "text hidden_size {} is not a multiple of {} heads",
                t.hidden_size, t.num_attention_heads
            ));
        }
        if v.patch_size > v.image_size {
            return Err(format!(
                "patch_size {} is larger than image_size {}",
                v.patch_size, v.image_size
            ));
        }
        if !v.image_size.is_multiple_of(v.patch_size) {
            return Err(format!(
                "image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        if v.num_channels != 3 {
            return Err(format!(
                "num_channels {} (only RGB, 3, is supported)",
                v.num_channels
            ));
        }
        // The largest buffers the loader and a forward pass size from the config, per image
        // or sequence: none may overflow (the bounds above make this hold; checked anyway).
        let products = [
            (v.num_positions(), v.hidden_size),
            (3 * v.patch_size * v.patch_size, v.hidden_size),
            (v.intermediate_size, v.hidden_size),
            (t.vocab_size, t.hidden_size),
            (t.max_position_embeddings, t.intermediate_size),
            (t.intermediate_size, t.hidden_size),
        ];
        for (a, b) in products {
            if a.checked_mul(b).and_then(|n| n.checked_mul(16)).is_none() {
                return Err(format!("sizes {a} x {b} overflow"));
            }
        }
        Ok(())
    }
}
