"""nbgrader course configuration: the repository root is the course directory.

solutions/ holds the instructor's source notebooks and exercises/ the released
learner notebooks (`python -m autograder release` regenerates it). Instructors collect
work into submitted/<student>/<assignment>/ and run `nbgrader autograde <assignment>`;
each graded cell then runs the same hidden tests as `python -m autograder grade`.
"""

c = get_config()  # noqa: F821 (nbgrader provides get_config)

c.CourseDirectory.course_id = "applied-ml-in-industry"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "cardfraud", ".hypothesis"]

# A graded course keeps its hidden tests out of the learners' copy: run nbgrader with
# AUTOGRADER_HIDDEN_TESTS=/private/hidden_tests in its environment; the kernels it
# starts inherit the variable, so the graded cells find the tests there.

# Each graded cell runs a part's hidden tests; give a slow one time to finish.
c.ExecutePreprocessor.timeout = 300
