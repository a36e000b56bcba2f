//! Offers that marketing acts on, beside the ranked lists: the product [`catalog`] they
//! read, association [`rules`] (what is bought together), [`crosssell`] (complementary
//! items by category) and [`upsell`] (the dearer item a customer moves to next, and when).

pub mod catalog;
pub mod crosssell;
pub mod rules;
pub mod upsell;
