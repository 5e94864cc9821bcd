"""Looking inside trained models: token attributions (integrated gradients, attention), the
pages and images that show them, and the one-page run report.

Nothing here knows a task: a task says what to explain through its `explanation_scores` hook
(tasks/base.py); the model's token embedding is found by type.
"""
