//! External ids to dense indices, and back.
//!
//! Customers and items arrive as arbitrary strings. Every kernel works on dense `u32`
//! indices instead, wrapped in newtypes so a customer index can never index items.
//! Indices are assigned in *natural id order* (see [`natural_cmp`]), never in hash or
//! arrival order, so the same set of ids always gets the same indices whatever order
//! the rows came in, and "ties break by item id" is the same as "by item index".

use std::cmp::Ordering;

use hashbrown::HashTable;
use rayon::prelude::*;

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

/// An immutable, sorted id table: index `i` holds the `i`-th id in natural order. All ids
/// live in one string (no allocation per id); lookups are binary searches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdTable {
    text: String,
    /// `ends[i]`: where id `i` ends in `text` (it starts where id `i - 1` ends).
    ends: Vec<usize>,
}

impl IdTable {
    /// Builds a table from ids that must be distinct and already in natural order.
    ///
    /// Returns `None` when they are not (a model file that violates this is corrupt).
    pub fn from_sorted<S: AsRef<str>>(ids: &[S]) -> Option<Self> {
        let mut text = String::with_capacity(ids.iter().map(|s| s.as_ref().len()).sum());
        let mut ends = Vec::with_capacity(ids.len());
        for id in ids {
            text.push_str(id.as_ref());
            ends.push(text.len());
        }
        IdTable::from_parts(text, ends)
    }

    /// Builds a table from the concatenated ids and their end offsets, checking that the
    /// offsets are in order, on character boundaries, and that the ids are distinct and
    /// in natural order.
    pub fn from_parts(text: String, ends: Vec<usize>) -> Option<Self> {
        if ends.len() > u32::MAX as usize || ends.last().copied().unwrap_or(0) != text.len() {
            return None;
        }
        let mut start = 0;
        for &end in &ends {
            if end < start || !text.is_char_boundary(end) {
                return None;
            }
            start = end;
        }
        let table = IdTable { text, ends };
        let in_order = (1..table.len())
            .into_par_iter()
            .all(|i| natural_cmp(table.id(i as u32 - 1), table.id(i as u32)) == Ordering::Less);
        in_order.then_some(table)
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the table holds no ids.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The dense index of an external id.
    pub fn index_of(&self, id: &str) -> Option<u32> {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match natural_cmp(self.id(mid as u32), id) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid as u32),
            }
        }
        None
    }

    /// The external id at a dense index.
    pub fn id(&self, index: u32) -> &str {
        let i = index as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// All ids in index order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len() as u32).map(|i| self.id(i))
    }

    /// The concatenated ids and their end offsets (for the model file).
    pub fn parts(&self) -> (&str, &[usize]) {
        (&self.text, &self.ends)
    }
}

/// The hash [`Interner`] files an id under.
pub(crate) fn id_hash(id: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(id)
}

/// Interns ids in arrival order while reading; [`Interner::finish`] sorts them into an
/// [`IdTable`] and returns the map from arrival index to final index. The distinct ids
/// live in one string, each with its hash, in arrival order: no allocation per id, and
/// another interner takes them ([`Interner::intern_all`]) without hashing them again, so
/// the reading threads look each id up in a copy of the ids merged so far
/// ([`Interner::get_hashed`]), intern the others per chunk, and the one thread that merges
/// the chunks interns only those.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    text: String,
    /// `ends[i]`: where id `i` ends in `text`.
    ends: Vec<usize>,
    hashes: Vec<u64>,
    /// Arrival indices, filed by hash.
    table: HashTable<u32>,
}

impl Interner {
    /// Returns the arrival index of `id`, adding it if new. `None` when more than
    /// `u32::MAX` distinct ids were seen.
    pub fn intern(&mut self, id: &str) -> Option<u32> {
        self.intern_hashed(id, id_hash(id))
    }

    /// [`Interner::intern`] of an id whose [`id_hash`] is known.
    pub(crate) fn intern_hashed(&mut self, id: &str, hash: u64) -> Option<u32> {
        if let Some(i) = self.get_hashed(id, hash) {
            return Some(i);
        }
        let i = u32::try_from(self.ends.len()).ok().filter(|&i| i < u32::MAX)?;
        let hashes = &self.hashes;
        self.table.insert_unique(hash, i, |&j| hashes[j as usize]);
        self.text.push_str(id);
        self.ends.push(self.text.len());
        self.hashes.push(hash);
        Some(i)
    }

    /// The arrival index of `id` (its [`id_hash`] is `hash`), if it was interned.
    pub(crate) fn get_hashed(&self, id: &str, hash: u64) -> Option<u32> {
        self.table.find(hash, |&i| self.id(i) == id).copied()
    }

    /// The arrival indices here of every id of `other`, in its arrival order (new ones
    /// added in that order). `None` when more than `u32::MAX` distinct ids were seen.
    pub(crate) fn intern_all(&mut self, other: &Interner) -> Option<Vec<u32>> {
        (0..other.len()).map(|i| self.intern_hashed(other.id(i as u32), other.hashes[i])).collect()
    }

    /// The id of arrival index `i`.
    pub(crate) fn id(&self, i: u32) -> &str {
        let i = i as usize;
        &self.text[if i == 0 { 0 } else { self.ends[i - 1] }..self.ends[i]]
    }

    /// Number of distinct ids so far.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no id was interned.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Sorts the ids naturally. Returns the table and `remap[arrival] = final index`.
    pub fn finish(self) -> (IdTable, Vec<u32>) {
        let ids: Vec<&str> = (0..self.len() as u32).map(|i| self.id(i)).collect();
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        // Distinct ids in a total order: the same sort on any number of threads.
        order.par_sort_unstable_by(|&a, &b| natural_cmp(ids[a as usize], ids[b as usize]));
        let mut remap = vec![0u32; ids.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        let table = IdTable::from_sorted(&order.iter().map(|&old| ids[old as usize]).collect::<Vec<&str>>())
            .expect("distinct ids sort into a valid table");
        (table, remap)
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
        // Leading zeros: by length, then bytewise, as the README says (model files store
        // ids in this order, so it cannot change without a new format version).
        let mut z = vec!["007", "10", "07", "00", "9"];
        z.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(z, ["9", "00", "07", "10", "007"]);
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
        assert_eq!(IdTable::from_sorted(&table.iter().collect::<Vec<_>>()), Some(table.clone()));
        assert!(IdTable::from_sorted(&["b", "a"]).is_none());
        assert!(IdTable::from_sorted(&["a", "a"]).is_none());
        assert!(IdTable::from_parts("ab".into(), vec![2, 1]).is_none());
        assert!(IdTable::from_parts("é".into(), vec![1, 2]).is_none());
        assert_eq!(table.index_of("nope"), None);
    }
}
