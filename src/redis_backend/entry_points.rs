//! The public check methods, written once: the backend's (over `(limit, key)` pairs), a
//! limiter's (one key) and a composite's (one key, every limit), blocking and async. In
//! each family the methods differ only in name, docs, return type and what runs them, so
//! each file lists its methods and `checks!` writes their signatures and bodies.
//!
//! ```text
//! checks! { family [async] [.await]
//!     /// docs
//!     fn name -> Return = what_runs_it(Mode);   // Mode for the backend family only
//! }
//! ```

macro_rules! checks {
    ($family:ident $asyncness:tt $suffix:tt $(
        $(#[$doc:meta])* fn $name:ident -> $ret:ty = $run:ident $(($mode:ident))?;
    )*) => {$(
        checks!(@$family $asyncness $suffix [$(#[$doc])*] $name $ret, $run [$($mode)?]);
    )*};
    (@backend [$($a:ident)?] [$($s:tt)*] [$($attr:tt)*]
        $name:ident $ret:ty, $run:ident [$mode:ident]) => {
        $($attr)*
        pub $($a)? fn $name(
            &self,
            limits: &[(&RedisLimit, &[u8])],
            now: u64,
            cost: u64,
            states: &mut [Decision],
        ) -> Result<$ret, RedisCheckError> {
            self.inner.$run(Check::new(limits, now, cost, Mode::$mode), states) $($s)*
        }
    };
    // A limiter and a composite check one key: the composite with every limit's state.
    (@limiter $a:tt $s:tt $attr:tt $name:ident $ret:ty, $run:ident []) => {
        checks!(@key $a $s $attr $name $ret, $run [] [&mut []]);
    };
    (@composite $a:tt $s:tt $attr:tt $name:ident $ret:ty, $run:ident []) => {
        checks!(@key $a $s $attr $name $ret, $run [states: &mut [Decision]] [states]);
    };
    (@key [$($a:ident)?] [$($s:tt)*] [$($attr:tt)*]
        $name:ident $ret:ty, $run:ident [$($param:tt)*] [$($states:tt)*]) => {
        $($attr)*
        pub $($a)? fn $name(
            &self,
            key: &[u8],
            now: u64,
            cost: u64,
            $($param)*
        ) -> Result<$ret, RedisCheckError> {
            self.backend.$run(&self.members(key), now, cost, $($states)*) $($s)*
        }
    };
}
