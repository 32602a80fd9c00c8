"""python download.py [flags]: fetch the datasets and andrewliao11's published grids. The original's entry point; the program is
cogan_tf/scripts/download.py (`python -m cogan_tf download` runs it from any directory)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("cogan_tf.scripts.download", run_name="__main__", alter_sys=True)
