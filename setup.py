"""cogan_tf: TensorFlow 2 / Keras 3 ports of CoGAN (andrewliao11), a vanilla GAN and a ClusterGAN."""

from setuptools import find_packages, setup

setup(
    name="cogan_tf",
    version="0.1.0",
    description="A faithful TF2/Keras 3 port of andrewliao11's CoGAN-tensorflow, with vanilla GAN and ClusterGAN",
    packages=find_packages(include=["cogan_tf", "cogan_tf.*"]),
    # The evaluation classifiers' weights (sha256 pinned in cogan_tf/evaluate/classifier.py).
    package_data={"cogan_tf": ["classifiers/*.npz"]},
    python_requires=">=3.10",
    install_requires=[
        # The design's set: TF 2.16+ is the first release whose tf.keras is Keras 3.
        "tensorflow>=2.16",
        "numpy",
        "absl-py",  # flags of the entry scripts, as the original's tf.app.flags
        "pillow",  # PNG grids and GIFs
        "tensorboard",  # tf.summary needs it; TF 2.21 no longer installs it
        # Optional last download source; it is in the design's set, so it is installed by default.
        "tensorflow-datasets",
        # Well-kept libraries instead of hand-written equivalents:
        "tqdm",  # download progress bars
        "scipy",  # linear_sum_assignment for clustering accuracy, sqrtm for Frechet distance
        "scikit-learn",  # NMI and ARI clustering scores
        "matplotlib",  # loss plots of the vanilla GAN and ClusterGAN, as the originals draw them
    ],
    extras_require={"test": [
        "pytest",
        # Tests only, never the package: the edge pair's test compares cogan_tf.pairs.transform with the
        # official CoGAN code's own operation, cv2.dilate(img, ones((3, 3)), 1) - img, pixel for pixel.
        "opencv-python-headless",
    ]},
)
