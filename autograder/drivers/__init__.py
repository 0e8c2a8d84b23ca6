"""Drivers: given code that a judged hidden test runs beside the learner's code, with ``learner.beside``.

Some scenarios cannot be played from the judge through stand-ins: a DataLoader that forks
workers around the learner's dataset, a stream that counts how far the learner's code
read it. A driver plays such a scenario in the learner's worker and returns what the
test needs, by value. A driver's own findings come from the process that runs the
learner's code, so a submission could change them as it could its own return values:
drivers report facts, and the hidden tests judge them (see the threat model in
how_to_use.md). Under a self-check or nbgrader, the same drivers run in the notebook's
process, so all modes give equal points.

One module per chapter (``data``, ``testing``, ``serving``, ``training``), and ``calls``
for what any chapter uses.
"""
