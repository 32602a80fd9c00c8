"""python -m cogan_tf PROGRAM [flags]: the project's programs, from any directory.

    main      train (--is_train True) or evaluate (--is_train False) a GAN; as python main.py
    download  fetch datasets and andrewliao11's published grids; as python download.py
    invert    write the CoGAN's second domain (--pair negative, edge, rotate); as python invert.py
    evaluate  sample-quality and clustering reports; as python -m cogan_tf.evaluate
    bench     the benchmark; as python -m cogan_tf.bench
    launch    train with several worker processes on this machine; as python -m cogan_tf.launch

`python -m cogan_tf PROGRAM --help` lists a program's flags.
"""

import runpy
import sys

PROGRAMS = {"main": "cogan_tf.scripts.main", "download": "cogan_tf.scripts.download",
            "invert": "cogan_tf.scripts.invert", "evaluate": "cogan_tf.evaluate", "bench": "cogan_tf.bench",
            "launch": "cogan_tf.launch"}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in PROGRAMS:
        given = f"unknown program {sys.argv[1]!r}; " if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else ""
        print(f"error: {given}usage: python -m cogan_tf {{{','.join(PROGRAMS)}}} [flags]", file=sys.stderr)
        sys.exit(0 if sys.argv[1:2] in (["-h"], ["--help"]) else 2)
    name = sys.argv.pop(1)
    sys.argv[0] = f"python -m cogan_tf {name}"
    runpy.run_module(PROGRAMS[name], run_name="__main__", alter_sys=True)
