//! The pipeline on one machine: a runner that delivers queue messages to the
//! functions' own handlers (as Lambda's event source mappings would), and the
//! developer commands built on it.

pub mod console;
pub mod demo;
pub mod env;
pub mod measure;
pub mod model;
pub mod operator;
pub mod runner;
pub mod serve;

pub use runner::Runner;
