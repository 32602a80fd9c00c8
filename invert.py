"""python invert.py [flags]: write the inverted digits (255 - x) of the CoGAN's second domain.

The program is cogan_tf/scripts/invert.py (`python -m cogan_tf invert` runs it from any directory); this file keeps
the original's layout.
"""

from absl import flags

from cogan_tf import cli
from cogan_tf.scripts import invert as program

if __name__ == "__main__":
    __doc__ = program.__doc__  # --help describes the program
    program.define_flags()
    flags.adopt_module_key_flags(program)  # and lists its flags
    cli.run(program.main)
