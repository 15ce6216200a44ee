//! The EL2 image. Everything lives in the library; this crate only links it.
#![no_std]
#![no_main]

use armvisor as _;
