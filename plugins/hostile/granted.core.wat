;; Granted clocks and random: denies with the wall-clock seconds, 16 random bytes in hex and a random u64; warns with the monotonic clock.
(module
  (import "wasi:clocks/wall-clock@0.2.0" "now" (func $wall_now (param i32)))
  (import "wasi:clocks/monotonic-clock@0.2.0" "now" (func $mono_now (result i64)))
  (import "wasi:random/random@0.2.3" "get-random-bytes" (func $random_bytes (param i64 i32)))
  (import "wasi:random/random@0.2.3" "get-random-u64" (func $random_u64 (result i64)))
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
  (data (i32.const 512) "0123456789abcdef")
  (data (i32.const 600) "now ")
  (data (i32.const 620) "random ")
  (data (i32.const 640) "u64 ")
  (data (i32.const 660) "monotonic ")
  ;; Writes $v in decimal at $dst; returns the number of digits.
  (func $utoa (param $v i64) (param $dst i32) (result i32)
    (local $n i32) (local $t i64) (local $p i32)
    (local.set $t (local.get $v))
    (loop $count
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $t (i64.div_u (local.get $t) (i64.const 10)))
      (br_if $count (i64.ne (local.get $t) (i64.const 0))))
    (local.set $p (i32.add (local.get $dst) (local.get $n)))
    (local.set $t (local.get $v))
    (loop $write
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $t) (i64.const 10)))))
      (local.set $t (i64.div_u (local.get $t) (i64.const 10)))
      (br_if $write (i64.ne (local.get $t) (i64.const 0))))
    (local.get $n))
  ;; Writes the $len bytes at $src as lowercase hex at $dst.
  (func $hex (param $src i32) (param $len i32) (param $dst i32)
    (local $i i32) (local $b i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $b (i32.load8_u (i32.add (local.get $src) (local.get $i))))
        (i32.store8 (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 1)))
          (i32.load8_u (i32.add (i32.const 512) (i32.shr_u (local.get $b) (i32.const 4)))))
        (i32.store8 (i32.add (local.get $dst) (i32.add (i32.shl (local.get $i) (i32.const 1)) (i32.const 1)))
          (i32.load8_u (i32.add (i32.const 512) (i32.and (local.get $b) (i32.const 15)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))
  (func (export "gantry:policy/manifest@0.1.0#check") (param i32) (result i32)
    (local $n i32)
    ;; deny[0] = "now SECONDS": the datetime record comes back at 64 (seconds u64, nanoseconds u32).
    (call $wall_now (i32.const 64))
    (memory.copy (i32.const 1024) (i32.const 600) (i32.const 4))
    (local.set $n (call $utoa (i64.load (i32.const 64)) (i32.const 1028)))
    (i32.store (i32.const 4096) (i32.const 1024))
    (i32.store (i32.const 4100) (i32.add (local.get $n) (i32.const 4)))
    ;; deny[1] = "random HEX": the list<u8> comes back as (ptr, len) at 80.
    (call $random_bytes (i64.const 16) (i32.const 80))
    (memory.copy (i32.const 2048) (i32.const 620) (i32.const 7))
    (call $hex (i32.load (i32.const 80)) (i32.load (i32.const 84)) (i32.const 2055))
    (i32.store (i32.const 4104) (i32.const 2048))
    (i32.store (i32.const 4108) (i32.add (i32.const 7) (i32.shl (i32.load (i32.const 84)) (i32.const 1))))
    ;; deny[2] = "u64 DECIMAL".
    (memory.copy (i32.const 3072) (i32.const 640) (i32.const 4))
    (local.set $n (call $utoa (call $random_u64) (i32.const 3076)))
    (i32.store (i32.const 4112) (i32.const 3072))
    (i32.store (i32.const 4116) (i32.add (local.get $n) (i32.const 4)))
    ;; warn[0] = "monotonic NANOSECONDS".
    (memory.copy (i32.const 3584) (i32.const 660) (i32.const 10))
    (local.set $n (call $utoa (call $mono_now) (i32.const 3594)))
    (i32.store (i32.const 4160) (i32.const 3584))
    (i32.store (i32.const 4164) (i32.add (local.get $n) (i32.const 10)))
    ;; verdict at 16: deny = (4096, 3), warn = (4160, 1).
    (i32.store (i32.const 16) (i32.const 4096)) (i32.store (i32.const 20) (i32.const 3))
    (i32.store (i32.const 24) (i32.const 4160)) (i32.store (i32.const 28) (i32.const 1))
    (i32.const 16))
)
