"""`from hyperdist.mongoexp import MongoTrials`, as Hyperopt's MongoDB tutorials import it from
`hyperopt.mongoexp`; the class lives in hyperdist/distributed/mongotrials.py."""
from hyperdist.distributed.mongotrials import MongoTrials

__all__ = ["MongoTrials"]
