"""Cold-start models mapping side features (and a few revealed interactions) to embeddings.

Every model is a :class:`recsys_coldstart.types.ColdStartModel` (``embed_users``,
``embed_items``, ``user_factors_``, ``item_factors_``) and serves top-k through
:class:`recsys_coldstart.retrieval.EmbeddingIndex`.
"""

from recsys_coldstart.coldstart.aldi import ALDI, ALDIConfig
from recsys_coldstart.coldstart.dropoutnet import DropoutNet, DropoutNetConfig
from recsys_coldstart.coldstart.heater import Heater, HeaterConfig

__all__ = ["ALDI", "ALDIConfig", "DropoutNet", "DropoutNetConfig", "Heater", "HeaterConfig"]
