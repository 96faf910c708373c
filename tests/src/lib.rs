//! The pipeline tests live in tests/.
