"""The code file of the logged MLflow model ("models from code"): MLflow runs it to get the model.

Not imported by leadscore itself: `modeling.tracking` logs it by path (`registry.PYFUNC_CODE`),
with the leadscore package as the model's code, so `import leadscore` works wherever the model
is loaded. The bundle and the config come from the model's artifacts (`LeadScorePyfunc.
load_context`).
"""

from leadscore.scoring.serve import LeadScorePyfunc, mlflow

mlflow.models.set_model(LeadScorePyfunc())
