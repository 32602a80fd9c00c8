"""python download.py [flags]: fetch MNIST, Fashion-MNIST and andrewliao11's published grids, verified.

The program is cogan_tf/scripts/download.py (`python -m cogan_tf download` runs it from any directory); this file keeps
the original's layout.
"""

import sys

from absl import flags

from cogan_tf import cli
from cogan_tf.scripts import download as program

if __name__ == "__main__":
    __doc__ = program.__doc__  # --help describes the program
    program.define_flags()
    flags.adopt_module_key_flags(program)  # and lists its flags
    sys.argv = program.positional_to_flag(sys.argv)
    cli.run(program.main)
