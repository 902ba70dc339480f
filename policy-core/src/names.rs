//! Names of the closed sets (actions, reasons, models, policies …): one
//! table per set, written once next to the enum, from which Rust names, C
//! names (NUL-terminated), parsing, the numeric values that cross the C ABI
//! and serde all derive.

use thiserror::Error;

/// A name that is not in a closed set.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {set} '{name}' (known: {known})")]
pub struct UnknownName {
    /// Which set, e.g. "policy".
    pub set: &'static str,
    /// The name given.
    pub name: String,
    /// The names the set has, comma-separated.
    pub known: String,
}

/// A number that is not the value of any member of a closed set (e.g. a C
/// enum field holding garbage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid {set}: {value} is not one of its values")]
pub struct UnknownValue {
    /// Which set.
    pub set: &'static str,
    /// The value given.
    pub value: u32,
}

/// Implements the name table of a `#[repr(u32)]` enum: `ALL`, `name()`,
/// `c_name()`, `from_name()`, `Display`, `FromStr`, `TryFrom<u32>` and, with
/// the `serde` feature, (de)serialization by name. The `match` it generates
/// is exhaustive, so a variant missing from the table does not compile.
macro_rules! names {
    ($ty:ident, $set:literal { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every member, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// Stable kebab-case name, as printed in tables, JSON, traces
            /// and QEMU's QAPI.
            pub const fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// The same name, NUL-terminated, for C callers.
            pub const fn c_name(self) -> &'static ::core::ffi::CStr {
                match self {
                    $($ty::$variant => match ::core::ffi::CStr::from_bytes_with_nul(
                        concat!($name, "\0").as_bytes(),
                    ) {
                        Ok(name) => name,
                        Err(_) => panic!("a name holds a NUL byte"),
                    }),+
                }
            }

            /// The member called `name`.
            pub fn from_name(name: &str) -> Result<Self, $crate::names::UnknownName> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|member| member.name() == name)
                    .ok_or_else(|| $crate::names::UnknownName {
                        set: $set,
                        name: name.to_string(),
                        known: Self::ALL
                            .iter()
                            .map(|member| member.name())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
        }

        impl ::core::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::core::str::FromStr for $ty {
            type Err = $crate::names::UnknownName;
            fn from_str(name: &str) -> Result<Self, Self::Err> {
                Self::from_name(name)
            }
        }

        impl From<$ty> for u32 {
            fn from(member: $ty) -> u32 {
                member as u32
            }
        }

        impl TryFrom<u32> for $ty {
            type Error = $crate::names::UnknownValue;
            fn try_from(value: u32) -> Result<Self, Self::Error> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|member| *member as u32 == value)
                    .ok_or($crate::names::UnknownValue { set: $set, value })
            }
        }

        #[cfg(feature = "serde")]
        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <::std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_name(&name).map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use names;

#[cfg(test)]
mod tests {
    use crate::decision::{Action, ModelKind, Reason};
    use crate::policies::PolicyKind;
    use crate::NonConvergenceAction;

    fn round_trips<T>(
        all: &[T],
        name: fn(T) -> &'static str,
        c_name: fn(T) -> &'static std::ffi::CStr,
    ) where
        T: Copy + PartialEq + std::fmt::Debug + std::str::FromStr + TryFrom<u32> + Into<u32>,
        <T as std::str::FromStr>::Err: std::fmt::Debug,
        <T as TryFrom<u32>>::Error: std::fmt::Debug,
    {
        let mut seen = std::collections::HashSet::new();
        for &member in all {
            assert!(seen.insert(name(member)), "duplicate name {}", name(member));
            assert_eq!(name(member).parse::<T>().unwrap(), member);
            assert_eq!(c_name(member).to_str().unwrap(), name(member));
            assert_eq!(T::try_from(member.into()).unwrap(), member);
        }
    }

    #[test]
    fn every_table_round_trips() {
        round_trips(Action::ALL, Action::name, Action::c_name);
        round_trips(Reason::ALL, Reason::name, Reason::c_name);
        round_trips(ModelKind::ALL, ModelKind::name, ModelKind::c_name);
        round_trips(PolicyKind::ALL, PolicyKind::name, PolicyKind::c_name);
        round_trips(
            NonConvergenceAction::ALL,
            NonConvergenceAction::name,
            NonConvergenceAction::c_name,
        );
    }

    #[test]
    fn unknown_names_and_values_name_the_set() {
        let err = "sometimes".parse::<Action>().unwrap_err();
        assert!(
            err.to_string().contains("unknown action 'sometimes'"),
            "{err}"
        );
        assert!(err.to_string().contains("stop-and-copy"), "{err}");
        let err = Reason::try_from(9999).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid reason: 9999 is not one of its values"
        );
    }
}
