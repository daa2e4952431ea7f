"""The run: one function per DAG step (``steps``), the run context, the summary report."""
