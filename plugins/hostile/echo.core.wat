;; Well behaved: logs its config and returns it as the one warn message of the manifest check.
(module
  (import "gantry:policy/host@0.1.0" "config" (func $config (param i32)))
  (import "gantry:policy/host@0.1.0" "log" (func $log (param i32 i32 i32)))
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
    ;; config() writes (ptr, len) of the JSON string at 32.
    (call $config (i32.const 32))
    (call $log (i32.const 1) (i32.load (i32.const 32)) (i32.load (i32.const 36)))
    ;; warn list at 48: one string, the config.
    (i32.store (i32.const 48) (i32.load (i32.const 32)))
    (i32.store (i32.const 52) (i32.load (i32.const 36)))
    ;; verdict at 16: deny = (0, 0), warn = (48, 1).
    (i32.store (i32.const 16) (i32.const 0)) (i32.store (i32.const 20) (i32.const 0))
    (i32.store (i32.const 24) (i32.const 48)) (i32.store (i32.const 28) (i32.const 1))
    (i32.const 16))
)
