"""python invert.py [--pair P] [flags]: write the CoGAN's second domain (inverted digits by default). The original's entry point; the program is
cogan_tf/scripts/invert.py (`python -m cogan_tf invert` runs it from any directory)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("cogan_tf.scripts.invert", run_name="__main__", alter_sys=True)
