;; Imports a granted wall clock but with the wrong type for `now`: gantry must refuse to link it.
(module
  (import "wasi:clocks/wall-clock@0.2.1" "now" (func $now (result i64)))
  (memory (export "memory") 5)
  ;; Bump allocator: the host lowers each hook input into memory through it.
  (global $bump (mut i32) (i32.const 262144))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $align))))
    (global.set $bump (i32.add (local.get $p) (local.get $size)))
    (block $ok
      (loop $grow
        (br_if $ok (i32.le_u (global.get $bump) (i32.shl (memory.size) (i32.const 16))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (local.get $p))
  (func (export "gantry:policy/manifest@0.1.0#check") (param i32) (result i32)
    (drop (call $now))
    (i32.store (i32.const 16) (i32.const 0)) (i32.store (i32.const 20) (i32.const 0))
    (i32.store (i32.const 24) (i32.const 0)) (i32.store (i32.const 28) (i32.const 0))
    (i32.const 16))
)
