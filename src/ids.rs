//! External ids to dense indices, and back.
//!
//! Customers and items arrive as arbitrary strings. Every kernel works on dense `u32`
//! indices instead, wrapped in newtypes so a customer index can never index items.
//! Indices are assigned in *natural id order* (see [`natural_cmp`]), never in hash or
//! arrival order, so the same set of ids always gets the same indices whatever order
//! the rows came in, and "ties break by item id" is the same as "by item index".

use std::cmp::Ordering;

use rustc_hash::FxHashMap;

/// Dense index of a customer in a fitted model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct CustomerIdx(pub u32);

/// Dense index of an item in a fitted model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct ItemIdx(pub u32);

impl CustomerIdx {
    /// The index as a `usize`, for slicing.
    #[inline]
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

impl ItemIdx {
    /// The index as a `usize`, for slicing.
    #[inline]
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// Orders ids the way a person expects: ids made only of ASCII digits come first, in
/// numeric order for ids without leading zeros (shorter first, then bytewise), and every
/// other id follows in byte order. It is a total order on distinct strings.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    match (digits(a), digits(b)) {
        (true, true) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

/// An immutable, sorted id table: index `i` holds the `i`-th id in natural order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdTable {
    ids: Vec<Box<str>>,
    lookup: FxHashMap<Box<str>, u32>,
}

impl IdTable {
    /// Builds a table from ids that must be distinct and already in natural order.
    ///
    /// Returns `None` when they are not (a model file that violates this is corrupt).
    pub fn from_sorted(ids: Vec<Box<str>>) -> Option<Self> {
        if ids.len() > u32::MAX as usize {
            return None;
        }
        if ids.windows(2).any(|w| natural_cmp(&w[0], &w[1]) != Ordering::Less) {
            return None;
        }
        let lookup = ids.iter().enumerate().map(|(i, s)| (s.clone(), i as u32)).collect();
        Some(IdTable { ids, lookup })
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the table holds no ids.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The dense index of an external id.
    pub fn index_of(&self, id: &str) -> Option<u32> {
        self.lookup.get(id).copied()
    }

    /// The external id at a dense index.
    pub fn id(&self, index: u32) -> &str {
        &self.ids[index as usize]
    }

    /// All ids in index order.
    pub fn ids(&self) -> &[Box<str>] {
        &self.ids
    }
}

/// Interns ids in arrival order while reading; [`Interner::finish`] sorts them into an
/// [`IdTable`] and returns the map from arrival index to final index.
#[derive(Debug, Default)]
pub struct Interner {
    ids: Vec<Box<str>>,
    lookup: FxHashMap<Box<str>, u32>,
}

impl Interner {
    /// Returns the arrival index of `id`, adding it if new. `None` when more than
    /// `u32::MAX` distinct ids were seen.
    pub fn intern(&mut self, id: &str) -> Option<u32> {
        if let Some(&i) = self.lookup.get(id) {
            return Some(i);
        }
        let i = u32::try_from(self.ids.len()).ok().filter(|&i| i < u32::MAX)?;
        let boxed: Box<str> = id.into();
        self.ids.push(boxed.clone());
        self.lookup.insert(boxed, i);
        Some(i)
    }

    /// Number of distinct ids so far.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id was interned.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Sorts the ids naturally. Returns the table and `remap[arrival] = final index`.
    pub fn finish(self) -> (IdTable, Vec<u32>) {
        let Interner { ids, lookup } = self;
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| natural_cmp(&ids[a as usize], &ids[b as usize]));
        let mut remap = vec![0u32; ids.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        let mut lookup = lookup;
        for v in lookup.values_mut() {
            *v = remap[*v as usize];
        }
        let mut slots: Vec<Option<Box<str>>> = ids.into_iter().map(Some).collect();
        let sorted = order.iter().map(|&old| slots[old as usize].take().unwrap_or_default()).collect();
        (IdTable { ids: sorted, lookup }, remap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_puts_numbers_first_in_numeric_order() {
        let mut v = vec!["b", "10", "9", "a", "100", "010", "85123A"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["9", "10", "010", "100", "85123A", "a", "b"]);
    }

    #[test]
    fn interner_round_trips_every_id_whatever_the_arrival_order() {
        let ids = ["z", "12", "2", "é", "", " x "];
        let mut fwd = Interner::default();
        let arrival: Vec<u32> = ids.iter().map(|s| fwd.intern(s).unwrap()).collect();
        assert_eq!(fwd.intern("12"), Some(1));
        let (table, remap) = fwd.finish();
        for (s, a) in ids.iter().zip(&arrival) {
            assert_eq!(table.id(remap[*a as usize]), *s);
            assert_eq!(table.index_of(s), Some(remap[*a as usize]));
        }
        let mut rev = Interner::default();
        for s in ids.iter().rev() {
            rev.intern(s);
        }
        assert_eq!(rev.finish().0, table);
        assert!(IdTable::from_sorted(table.ids().to_vec()).is_some());
        assert!(IdTable::from_sorted(vec!["b".into(), "a".into()]).is_none());
        assert!(IdTable::from_sorted(vec!["a".into(), "a".into()]).is_none());
    }
}
