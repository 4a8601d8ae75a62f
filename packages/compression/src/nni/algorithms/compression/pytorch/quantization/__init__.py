"""v1 quantizers: :class:`NaiveQuantizer`, :class:`QAT_Quantizer`, :class:`DoReFaQuantizer`,
:class:`BNNQuantizer`, :class:`LsqQuantizer`, :class:`ObserverQuantizer` (see :mod:`.quantizers`)."""
from .quantizers import BNNQuantizer, DoReFaQuantizer, LsqQuantizer, NaiveQuantizer, ObserverQuantizer, QAT_Quantizer

__all__ = ["BNNQuantizer", "DoReFaQuantizer", "LsqQuantizer", "NaiveQuantizer", "ObserverQuantizer", "QAT_Quantizer"]
