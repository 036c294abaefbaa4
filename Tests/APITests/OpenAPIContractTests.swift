import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import OpenAPIKit
import PostgresNIO
import Shop
import Skipper
import Testing
import TestSupport
import Yams

@testable import API

/// The served OpenAPI document against a real OpenAPI 3.1 implementation (OpenAPIKit, which swift-openapi-generator
/// builds on), against the router, and against what the server writes.
@Suite struct OpenAPIContractTests {
    /// The router and document of a build, without a database (its client never connects).
    static func parts() throws -> APIRouter {
        var config = try SkipperConfig(environment: ["DATABASE_URL": "postgres://x@127.0.0.1:1/d"])
        config.port = 0
        let postgres = PostgresClient(configuration: config.database.clientConfiguration(applicationName: "test"))
        return buildRouter(config: config, postgres: postgres, listen: postgres, logger: .init(label: "test"))
    }

    /// The document as served, parsed by Yams and decoded by OpenAPIKit.
    static func served() async throws -> (text: String, document: OpenAPI.Document) {
        var config = try SkipperConfig(environment: ["DATABASE_URL": "postgres://x@127.0.0.1:1/d"])
        config.apiTokens = ["t"]
        let app = try await buildApplication(config: config, logger: Logger(label: "test"))
        let text = try await app.test(.router) { client in
            try await client.execute(uri: "/openapi.yaml", method: .get, headers: [.authorization: "Bearer t"]) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/yaml")
                return String(buffer: response.body)
            }
        }
        return (text, try YAMLDecoder().decode(OpenAPI.Document.self, from: text))
    }

    @Test func theServedDocumentIsValidOpenAPI31() async throws {
        let (text, document) = try await Self.served()
        #expect(text.hasPrefix("openapi: \"3.1.0\"\n"))
        #expect(document.openAPIVersion == .v3_1_0)
        // Strict: OpenAPIKit's parse warnings fail too, with the validations it does not run by default.
        let validator = Validator().validating(\.documentContainsPaths, \.pathsContainOperations, \.schemaComponentsAreDefined, \.pathParametersAreDefined, \.operationsContainResponses)
        do {
            try document.validate(using: validator, strict: true)
        } catch {
            Issue.record("OpenAPIKit: \(error)")
        }
        #expect(document.warnings.isEmpty, "\(document.warnings)")
        // Every reference resolves.
        _ = try document.locallyDereferenced()
    }

    /// The check has teeth: the mistake of the hand-written document (a comma in a flow mapping's plain value, which
    /// made `or the job has no file` an unknown key of a Response object) fails it.
    @Test func theCheckRefusesAnUnknownKeyFromAFlowMapping() throws {
        let yaml = """
            openapi: 3.1.0
            info: { title: t, version: "1" }
            paths:
              /downloads/{job_id}.csv:
                get:
                  operationId: download
                  parameters: [ { name: job_id, in: path, required: true, schema: { type: integer } } ]
                  responses:
                    "404": { description: No such job, or the job has no file }
            """
        #expect(throws: (any Error).self) {
            let document = try YAMLDecoder().decode(OpenAPI.Document.self, from: yaml)
            try document.validate(strict: true)
        }
    }

    /// The emitter writes any string so that a YAML reader gets it back as it was: no comma, colon, quote, line
    /// break, control character, number-like or boolean-like text changes what is read, in values or in keys.
    @Test func theYAMLEmitterKeepsEveryStringAsItIs() throws {
        let values = [
            "No such job, or the job has no file", "key: value", "- item", "# not a comment", "\"quoted\" and \\back",
            "line\nbreak\ttab\r", "\u{0}\u{1F}\u{7F}\u{85}\u{9F}\u{2028}\u{FEFF}", "yes", "no", "on", "null", "~", "123", "1.5", "0x1F",
            "", " padded ", "{flow}", "[list]", "é ü 字 🚀", "*alias", "&anchor", "!tag", "%directive", "@at", "`tick`", "|", ">", "? key",
        ]
        let keys = ["200", "/jobs/{id}", "y", "On", "$ref", "x-itemSchema", "with space", "a:b", "", "-dash", "1e3", "Null"]
        let node = DocumentNode.map([
            .init(key: "values", value: .list(values.map(DocumentNode.string))),
            .init(key: "keys", value: .map(keys.enumerated().map { .init(key: $0.element, value: .integer(Int64($0.offset))) })),
            .init(key: "numbers", value: .list([.integer(Int64.max), .integer(Int64.min), .integer(0), .bool(true), .bool(false), .null])),
            .init(key: "nested", value: .list([.list([.string("a")]), .map([.init(key: "k", value: .list([]))]), .map([])])),
        ])
        let loaded = try #require(try Yams.load(yaml: YAMLText.render(node)) as? [String: Any])
        #expect(loaded["values"] as? [String] == values)
        let map = try #require(loaded["keys"] as? [String: Int])
        #expect(map == Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($0.element, $0.offset) }))
        let numbers = try #require(loaded["numbers"] as? [Any])
        #expect(numbers[0] as? Int == Int.max && numbers[1] as? Int == Int.min && numbers[3] as? Bool == true && numbers[5] is NSNull)
        let nested = try #require(loaded["nested"] as? [Any])
        #expect(nested[0] as? [String] == ["a"])
        #expect((nested[1] as? [String: [Any]])?["k"]?.isEmpty == true)
        #expect((nested[2] as? [String: Any])?.isEmpty == true)
    }

    @Test func everyRouteIsDocumentedAndNothingElse() async throws {
        let (_, document) = try await Self.served()
        let routed = Set(try Self.parts().router.routes.map { "\($0.method.rawValue) \($0.path)" })
        let documented = Set(document.routes.flatMap { route in
            route.pathItem.endpoints.map { "\($0.method.rawValue) \(route.path.rawValue)" }
        })
        #expect(routed.count >= 16)
        #expect(routed.subtracting(documented).isEmpty, "routed but not documented: \(routed.subtracting(documented))")
        #expect(documented.subtracting(routed).isEmpty, "documented but not routed: \(documented.subtracting(routed))")
    }

    /// What each operation promises holds for the things every route shares: bearer security but on /health, /ready
    /// and the dashboard's page and files (which the auth middleware lets through), 401 wherever a token is needed,
    /// the validator's errors wherever it can raise them, and X-Request-ID on every response.
    @Test func securityAndSharedErrorsAreDocumentedWhereTheyApply() async throws {
        let (_, document) = try await Self.served()
        #expect(document.security.map { $0.keys.map(\.name) } == [["bearer"]])
        for route in document.routes {
            for endpoint in route.pathItem.endpoints {
                let operation = endpoint.operation
                let name = "\(endpoint.method.rawValue) \(route.path.rawValue)"
                let open = ["/health", "/ready"].contains(route.path.rawValue) || route.path.rawValue.hasPrefix("/ui")
                #expect((operation.security?.isEmpty == true) == open, "\(name)")
                let statuses = Set(operation.responses.keys.map(\.rawValue))
                #expect(statuses.contains("401") == !open, "\(name): \(statuses)")
                if operation.requestBody != nil {
                    #expect(statuses.isSuperset(of: ["400", "413", "422"]), "\(name): \(statuses)")
                }
                for response in operation.responses.values {
                    let resolved = try #require(try? document.components.lookup(response))
                    #expect(resolved.headers?["X-Request-ID"] != nil, "\(name)")
                }
            }
        }
    }

    /// Every property the server writes is documented, and every documented one is written: a job, a page, an
    /// order, the report, and an error.
    @Test func resourcesCarryExactlyTheDocumentedProperties() async throws {
        let (_, document) = try await Self.served()
        var documented: [String: Set<String>] = [:]
        for name in ["Job", "JobPage", "Order", "SalesReport", "SettlementQueued", "Health", "Readiness"] {
            let schema = try #require(document.components.schemas[.init(stringLiteral: name)], "\(name)")
            documented[name] = Set(try #require(schema.objectContext).properties.keys)
        }
        let properties = documented
        try await withAPI { db, client in
            let product = try #require(try await db.scalar(
                "INSERT INTO products (name, category, stock, price_cents) VALUES ('Grinder', 'equipment', 5, 1000) RETURNING id"))
            let job = try await client.send(.post, "/jobs", json: #"{"kind": "noop"}"#)
            let page = try await client.send(.get, "/jobs")
            let order = try await client.send(.post, "/orders", json: #"{"product_id": \#(product), "quantity": 1, "buyer_id": "ana"}"#)
            let report = try await client.send(.get, "/reports/sales")
            let settlement = try await client.send(.post, "/jobs/settlement", json: #"{"from": "2025-01-01", "to": "2025-01-02"}"#)
            for (response, schema) in [(job, "Job"), (page, "JobPage"), (order, "Order"), (report, "SalesReport"), (settlement, "SettlementQueued")] {
                #expect(response.status.code < 300, "\(schema): \(response.text)")
                #expect(Set(response.json.keys) == properties[schema], "\(schema): \(response.text)")
            }
            #expect(Set((page.json["jobs"] as? [[String: Any]])?.first?.keys.map { $0 } ?? []) == properties["Job"])
            #expect((report.json["by_category"] as? [String: Any])?.isEmpty == true)
            let health = try await client.send(.get, "/health")
            #expect(Set(health.json.keys) == properties["Health"])
            let ready = try await client.send(.get, "/ready")
            #expect(Set(ready.json.keys) == properties["Readiness"])
        }
    }

    /// A field left out of a submission takes the default the document states (the validator fills it in from the
    /// same schema).
    @Test func leftOutFieldsTakeTheDocumentedDefaults() async throws {
        let (_, document) = try await Self.served()
        let newJob = try #require(document.components.schemas["NewJob"]?.objectContext)
        var defaults: [String: String] = [:]
        for (name, schema) in newJob.properties {
            if let value = schema.defaultValue { defaults[name] = "\(value.value)" }
        }
        #expect(Set(defaults.keys) == ["args", "queue", "priority", "max_attempts"])
        let expected = defaults
        try await withAPI { _, client in
            let job = try await client.send(.post, "/jobs", json: #"{"kind": "noop", "queue": null}"#)
            #expect(job.status == .accepted)
            for (name, value) in expected {
                #expect("\(job.json[name] ?? "missing")" == value, "\(name)")
            }
            let page = try await client.send(.get, "/jobs")
            #expect(page.status == .ok)
        }
    }

    /// POST /jobs/settlement hands its body to the settlement's own check (INVALID_ARGS, as POST /jobs does), so the
    /// document's schema of that body and the check must agree: at each bound the schema states, both accept or
    /// both refuse.
    @Test func theSettlementSchemaAgreesWithTheSettlementCheck() throws {
        guard case .object(let properties, let closed) = APISchemas.settlementRequest.kind else { Issue.record("not an object"); return }
        let check = ArgumentCheck(handlers: Dictionary(uniqueKeysWithValues: Shop.handlers().map { ($0.kind, $0) }))
        let cases: [String] = [
            #"{"from": "2025-01-01", "to": "2025-01-31"}"#,
            #"{"from": "2025-01-01", "to": "2025-01-31", "batch_size": 99}"#,
            #"{"from": "2025-01-01", "to": "2025-01-31", "batch_size": 100}"#,
            #"{"from": "2025-01-01", "to": "2025-01-31", "batch_size": 1000000}"#,
            #"{"from": "2025-01-01", "to": "2025-01-31", "batch_size": 1000001}"#,
            #"{"from": "2025-01-01", "to": "2025-01-31", "parallelism": 0}"#,
            #"{"from": "2025-01-01", "to": "2025-01-31", "parallelism": 1}"#,
            #"{"from": "2025-01-01", "to": "2025-01-31", "parallelism": 16}"#,
            #"{"from": "2025-01-01", "to": "2025-01-31", "parallelism": 17}"#,
            #"{"from": "2025-01-01", "to": "2025-01-31", "parallelism": null, "batch_size": null}"#,
            #"{"from": "2025-02-30", "to": "2025-03-01"}"#,
            #"{"from": "2025-13-01", "to": "2025-12-31"}"#,
            #"{"from": "20250101", "to": "2025-01-31"}"#,
            #"{"from": 20250101, "to": "2025-01-31"}"#,
            #"{"from": "2025-01-01"}"#,
            #"{"from": null, "to": "2025-01-31"}"#,
            #"{"from": "2025-01-01", "to": "2025-01-31", "batch_size": "big"}"#,
        ]
        for json in cases {
            let fields = try JSONDecoder().decode([String: JSONValue].self, from: Data(json.utf8))
            let bySchema = (try? RequestValidator.object(fields, properties: properties, closed: closed, path: "")) != nil
            let byCheck = (try? check.check(kind: "settlement", args: json, prefix: "")) != nil
            #expect(bySchema == byCheck, "\(json): schema \(bySchema ? "accepts" : "refuses"), check \(byCheck ? "accepts" : "refuses")")
        }
    }
}
