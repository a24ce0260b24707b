"""Fits the polynomial coefficients used by kernels/src/math (exp, erf, erfc).

Weighted least squares on Chebyshev nodes followed by Lawson's iteration, which
converges towards the minimax (equi-ripple) polynomial for the chosen weight.
The coefficients are then rounded to f32 and the f32 evaluation (with FMA, as the
kernels do it) is simulated in float64 to report the resulting error.

    python3 kernels/scripts/fit_polys.py

Needs numpy and mpmath. Not run by the tests: the printed constants are pasted
into kernels/src/math/consts.rs, and the Rust tests measure the real error.
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 40


def lawson(basis, target, weight, nodes, iters=200):
    """Minimise max |weight*(basis@c - target)| approximately."""
    A = np.array([[float(b) for b in basis(x)] for x in nodes])
    f = np.array([float(target(x)) for x in nodes])
    w = np.array([float(weight(x)) for x in nodes])
    lw = np.ones(len(nodes)) / len(nodes)
    for _ in range(iters):
        sw = np.sqrt(lw) * w
        c, *_ = np.linalg.lstsq(A * sw[:, None], f * sw, rcond=None)
        err = np.abs((A @ c - f) * w)
        lw = lw * err
        lw /= lw.sum()
    return c, err.max()


def cheb_nodes(a, b, n):
    k = np.arange(n)
    return (a + b) / 2 + (b - a) / 2 * np.cos((2 * k + 1) * np.pi / (2 * n))


def f32(v):
    return np.float32(v)


def fma32(a, b, c):
    return np.float32(np.float64(a) * np.float64(b) + np.float64(c))


def horner32(cs, x):
    acc = f32(cs[-1])
    for c in reversed(cs[:-1]):
        acc = fma32(acc, x, f32(c))
    return acc


def fit_exp():
    # e^r = 1 + r + r^2 q(r), |r| <= ln2/2; weight makes the error relative to e^r.
    h = float(mp.log(2) / 2) * 1.0005
    nodes = [x for x in cheb_nodes(-h, h, 400) if abs(x) > 1e-6]
    deg = 4
    c, e = lawson(
        lambda r: [r**i for i in range(deg + 1)],
        lambda r: (mp.exp(r) - 1 - r) / mp.mpf(r) ** 2,
        lambda r: r * r / float(mp.exp(r)),
        nodes,
    )
    print("exp q(r) coefficients c2..c6 (rel err of p: %.3e)" % e)
    for i, v in enumerate(c):
        print("  c%d = %.9e  (f32 %r)" % (i + 2, v, float(f32(v))))
    return [f32(v) for v in c]


def fit_erf_small():
    # erf(a) = a * P(a^2), 0 <= a <= 1; relative error.
    deg = 6
    nodes = cheb_nodes(0.0, 1.0, 400)
    c, e = lawson(
        lambda t: [t**i for i in range(deg + 1)],
        lambda t: mp.erf(mp.sqrt(t)) / mp.sqrt(t) if t > 0 else 2 / mp.sqrt(mp.pi),
        lambda t: 1.0,
        nodes,
    )
    print("erf P(t) coefficients, t = a^2 (rel err %.3e)" % e)
    for i, v in enumerate(c):
        print("  p%d = %.9e  (f32 %r)" % (i, v, float(f32(v))))
    return [f32(v) for v in c]


def fit_log_erfc(deg, lo=1.0, hi=4.0, mid=1.0):
    # erfc(a) = exp(Q(a - mid)), lo <= a <= hi; uniform weight: the absolute error of Q is
    # the relative error of erfc (which exact GELU needs for x < 0).
    nodes = cheb_nodes(lo, hi, 500)
    c, e = lawson(
        lambda a: [(a - mid) ** i for i in range(deg + 1)],
        lambda a: mp.log(mp.erfc(a)),
        lambda a: 1.0,
        nodes,
    )
    print("log erfc Q(u), u = a - %.2f, degree %d (rel err of erfc %.3e)" % (mid, deg, e))
    for i, v in enumerate(c):
        print("  q%d = %.9e  (f32 %r)" % (i, v, float(f32(v))))
    return [f32(v) for v in c]


if __name__ == "__main__":
    ce = fit_exp()
    cp = fit_erf_small()
    cq = fit_log_erfc(8)
    # Simulated f32 error of the erf pieces.
    xs = np.linspace(0, 1, 20001)[1:]
    worst = 0.0
    for a in xs:
        a32 = f32(a)
        t = f32(a32 * a32)
        y = f32(a32 * horner32(cp, t))
        worst = max(worst, abs(float(y) - float(mp.erf(float(a32)))))
    print("simulated erf small-branch max abs err %.3e" % worst)
    xs = np.linspace(1, 4, 20001)
    worst = 0.0
    for a in xs:
        a32 = f32(a)
        u = f32(a32 - f32(1.0))
        q = horner32(cq, u)
        y = f32(1.0 - np.float32(np.exp(np.float64(q))))
        worst = max(worst, abs(float(y) - float(mp.erf(float(a32)))))
    print("simulated erf large-branch max abs err %.3e (exp exact)" % worst)
