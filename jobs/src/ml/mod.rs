//! Model tables of the `ml` layer. A table with `[table.als]` trains ALS collaborative
//! filtering on its query's (user, item, rating) rows, distributed as alternating block solves.

pub mod als;
