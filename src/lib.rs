//! Support code for the integration suite under `tests/`: the broker address,
//! fresh topics per test and record readers.
