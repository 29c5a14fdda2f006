#!python
# pynsbind-run's Python half: the command line itself (pynsbind.cli).
# pynsbind-run, a C program built from csrc/launcher.c, runs a sandbox whose
# plan is kept and hands everything else here.  A script of its own rather
# than a console entry point: the launcher pip writes for one imports `re`
# first, which costs about as much as running a sandbox does.
import sys

from pynsbind.cli import main

sys.exit(main())
