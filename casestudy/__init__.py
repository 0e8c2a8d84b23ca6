"""The case-study system's given code: what lessons read, run and test.

These are the reference versions of parts of the fraud system that a chapter needs
but does not ask the learner to write: the image preprocessing of the disputes team,
a feature query, the fraud model. The testing chapter's exercises hand them to the
learner's tests, and its grader hands the same tests deliberately broken copies.
"""
