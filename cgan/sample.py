"""`python -m cgan.sample`: write samples of a run as a PNG grid or a .npz of uint8 images."""

from cgan.sampling import main

if __name__ == "__main__":
    raise SystemExit(main())
