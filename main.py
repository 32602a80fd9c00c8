"""python main.py [flags]: train (--is_train True) or evaluate (--is_train False) a GAN, as andrewliao11's main.py.

The program is cogan_tf/scripts/main.py (`python -m cogan_tf main` runs it from any directory); this file keeps
the original's layout.
"""

from absl import flags

from cogan_tf import cli
from cogan_tf.scripts import main as program

if __name__ == "__main__":
    __doc__ = program.__doc__  # --help describes the program
    program.define_flags()
    flags.adopt_module_key_flags(program)  # and lists its flags
    cli.run(program.main)
