"""The app views read books written by real rebalances: reuse the execution tests' funded paper account."""

from gradient_pipeline_tests.execution.conftest import paper, paper_factory  # noqa: F401 - pytest fixtures
