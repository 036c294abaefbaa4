/// golang-migrate's advisory lock key for a database, so skipper-migrate and golang-migrate exclude each other:
/// CRC-32 (IEEE) of "schema\0table\0database", multiplied by its salt in 32-bit arithmetic.
enum AdvisoryLockID {
    static func forDatabase(_ database: String, schema: String, table: String) -> Int64 {
        let key = Array("\(schema)\u{0}\(table)\u{0}\(database)".utf8)
        return Int64(Self.crc32(key) &* 1_486_364_155)
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 {
                crc = (crc & 1) == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1
            }
        }
        return ~crc
    }
}
