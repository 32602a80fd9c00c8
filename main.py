"""python main.py [flags]: train (--is_train True) or evaluate (--is_train False) a GAN. The original's entry point; the program is
cogan_tf/scripts/main.py (`python -m cogan_tf main` runs it from any directory)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("cogan_tf.scripts.main", run_name="__main__", alter_sys=True)
