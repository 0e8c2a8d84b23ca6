"""nbgrader course configuration: the repository root is the course directory.

solutions/ holds the instructor's source notebooks and exercises/ the released
learner notebooks (`python -m autograder release` regenerates it). Instructors collect
work into submitted/<student>/<assignment>/ and run `nbgrader autograde <assignment>`;
each graded cell then runs the same hidden tests as `python -m autograder grade`.
"""

import os

c = get_config()  # noqa: F821 (nbgrader provides get_config)

c.CourseDirectory.course_id = "applied-ml-in-industry"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "cardfraud"]

# A graded course keeps its hidden tests out of the learners' copy: point this at the
# private folder (the kernels that nbgrader starts inherit the variable).
# os.environ["AUTOGRADER_HIDDEN_TESTS"] = "/path/to/private/hidden_tests"
os.environ.setdefault("PYTHONNOUSERSITE", "1")

# Each graded cell runs a part's hidden tests; give a slow one time to finish.
c.ExecutePreprocessor.timeout = 300
