//! The vupdate state repo library (being written).
