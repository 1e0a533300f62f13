"""`from hyperdist.sklearn import HyperdistSearchCV`: the scikit-learn estimator, whose code lives in
hyperdist/integrations/sklearn.py beside the other integrations (extra `sklearn`)."""
from hyperdist.integrations.sklearn import HyperdistSearchCV

__all__ = ["HyperdistSearchCV"]
