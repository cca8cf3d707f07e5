pub mod audit;
pub mod demo;
pub mod dev_pki;
pub mod replay;
pub mod serve;
pub mod verify;
