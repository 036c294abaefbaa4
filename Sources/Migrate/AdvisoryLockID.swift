import Skipper

/// golang-migrate's advisory lock key for a database, so skipper-migrate and golang-migrate exclude each other:
/// CRC-32 (IEEE) of "schema\0table\0database", multiplied by its salt in 32-bit arithmetic.
enum AdvisoryLockID {
    static func forDatabase(_ database: String, schema: String, table: String) -> Int64 {
        SchemaLock.id(database: database, schema: schema, table: table)
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 { SchemaLock.crc32(bytes) }
}
