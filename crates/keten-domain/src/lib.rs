//! keten domain (being built).
