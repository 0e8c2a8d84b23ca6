"""The course package: export, release, self-check and grade exercises; generate the case-study data.

Command line: ``python -m autograder --help``. In a notebook:
``from autograder.notebook import Exercise``.
"""
