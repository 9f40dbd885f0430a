;; Returns garbage, a different kind from each export:
;;   manifest:     a deny message that is not UTF-8;
;;   signatures:   a deny list claiming 1,000,000 entries;
;;   attestations: 200 deny messages that all alias the same 1 MB of memory.
(module
  (memory (export "memory") 200)
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
  ;; Verdict at 16: deny = (1024, 1); message at 1024 = (2048, 2); bytes at 2048 = ff fe.
  (data (i32.const 16) "\00\04\00\00\01\00\00\00\00\00\00\00\00\00\00\00")
  (data (i32.const 1024) "\00\08\00\00\02\00\00\00")
  (data (i32.const 2048) "\ff\fe")
  (func (export "gantry:policy/manifest@0.1.0#check") (param i32) (result i32)
    (i32.const 16))
  (func (export "gantry:policy/signatures@0.1.0#check") (param i32) (result i32)
    ;; Verdict at 64: deny = (4096, 1000000) over zeroed memory, warn = (0, 0).
    (i32.store (i32.const 64) (i32.const 4096)) (i32.store (i32.const 68) (i32.const 1000000))
    (i32.store (i32.const 72) (i32.const 0)) (i32.store (i32.const 76) (i32.const 0))
    (i32.const 64))
  (func (export "gantry:policy/attestations@0.1.0#check") (param i32) (result i32)
    (local $i i32)
    ;; 200 messages at 4096, each (0, 1000000): the same region again and again.
    (loop $fill
      (i32.store (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0))
      (i32.store (i32.add (i32.const 4100) (i32.shl (local.get $i) (i32.const 3))) (i32.const 1000000))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 200))))
    (i32.store (i32.const 64) (i32.const 4096)) (i32.store (i32.const 68) (i32.const 200))
    (i32.store (i32.const 72) (i32.const 0)) (i32.store (i32.const 76) (i32.const 0))
    (i32.const 64))
)
