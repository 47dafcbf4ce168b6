"""Pure HL7 v2 -> FHIR R4 Bundle mappings; imports nothing of the server.

``parse(data)`` tokenizes a message (:mod:`mappings.message`); ``to_bundle(message, options)``
maps it to a transaction Bundle (:mod:`mappings.mapper`). Both raise subclasses of
:class:`~mappings.errors.Hl7Error` carrying a table 0357 code and a location for the ACK.
"""

from mappings.context import Options
from mappings.errors import Hl7Error, MappingError, ParseError
from mappings.mapper import to_bundle
from mappings.message import NULL, Field, Message, Segment, parse

__all__ = [
    "NULL",
    "Field",
    "Hl7Error",
    "MappingError",
    "Message",
    "Options",
    "ParseError",
    "Segment",
    "parse",
    "to_bundle",
]
