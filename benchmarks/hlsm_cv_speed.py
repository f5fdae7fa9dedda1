"""Time per fit of ``hlsm.fit_cv`` on a medium network: 145 nodes, 13 layers (the size of
the trade network in issue 12), simulated with sociality effects and three deviating
layers; ``fit_cv`` with its defaults, after a warm-up call (compilation excluded).

    python benchmarks/hlsm_cv_speed.py
"""
import os
import time

from fastgrad import hlsm


def main():
    Y = hlsm.simulate(145, 13, dim=2, deviating_layers=(0, 3, 7), sociality=0.5, random_state=0)[0]
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    hlsm.fit_cv(Y, dims=(2,), random_state=0)          # compile
    for seed in (0, 1):
        t = time.perf_counter()
        cv = hlsm.fit_cv(Y, random_state=seed)
        el = time.perf_counter() - t
        print(f"fit_cv 145 nodes x 13 layers, seed {seed}: {el:.2f} s, {cv.n_fits} fits, "
              f"{1e3 * el / cv.n_fits:.1f} ms per fit; selected dim {cv.dim}, lam {cv.lam:.3g}, "
              f"cv AUC {cv.cv_auc:.3f}")


if __name__ == "__main__":
    main()
