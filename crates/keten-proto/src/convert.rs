//! Conversions between the wire and the domain.
