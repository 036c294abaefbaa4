import Foundation

/// The OpenAPI 3.1 document served at `GET /openapi.yaml`. `JobsAPITests.openAPIDocumentsEveryRouteAndNothingElse`
/// holds it against the router: every route is documented and every documented operation is routed.
enum OpenAPIDocument {
    /// Every operation of the document as (method, path template), e.g. ("GET", "/jobs/{id}"), the form in which
    /// Hummingbird's `router.routes` describes its routes too.
    static var operations: [(method: String, path: String)] {
        var operations: [(method: String, path: String)] = []
        var inPaths = false
        var path: String?
        for line in Self.yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") { inPaths = line == "paths:"; continue }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast().uppercased()
                if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method) { operations.append((method, path)) }
            }
        }
        return operations
    }

    static let yaml = #"""
openapi: 3.1.0
info:
  title: Skipper
  version: "1.0"
  description: |
    Jobs in PostgreSQL. The API inserts jobs and reads their state; runner processes claim and run them.
    Errors are JSON objects {"error": CODE, "message": text}. When API_TOKENS is set, every endpoint but
    /health and /ready needs `Authorization: Bearer <token>`. Every response carries X-Request-ID (the
    client's, or a generated one), which is stored in the job's meta and logged by the runner that runs it.
servers:
  - url: http://127.0.0.1:8080
security:
  - bearer: []
paths:
  /jobs:
    post:
      operationId: submitJob
      summary: Submit a job
      description: |
        The answer comes once the job has committed. Submissions arriving together share one INSERT and one commit.
        A 503 after the database deadline means the job was not stored, unless PostgreSQL was slow rather than
        unreachable; submit with a unique_key when a retry must not duplicate the job.
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: "#/components/schemas/NewJob" }
      responses:
        "202": { description: Queued, content: { application/json: { schema: { $ref: "#/components/schemas/Job" } } } }
        "200": { description: A QUEUED job already holds the unique_key; that job, content: { application/json: { schema: { $ref: "#/components/schemas/Job" } } } }
        "400": { $ref: "#/components/responses/InvalidJSON" }
        "401": { $ref: "#/components/responses/Unauthorized" }
        "413": { $ref: "#/components/responses/TooLarge" }
        "422": { description: "INVALID_FIELD, UNKNOWN_KIND (no runner registered the kind) or INVALID_ARGS (the arguments do not decode for the kind)", content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
        "503": { $ref: "#/components/responses/Unavailable" }
    get:
      operationId: listJobs
      summary: List jobs, newest first, one page at a time
      parameters:
        - { name: status, in: query, schema: { $ref: "#/components/schemas/Status" } }
        - { name: kind, in: query, schema: { type: string } }
        - { name: queue, in: query, schema: { type: string } }
        - { name: limit, in: query, schema: { type: integer, minimum: 1, maximum: 1000, default: 50 } }
        - { name: after, in: query, description: The `next` cursor of the previous page, schema: { type: string } }
      responses:
        "200": { description: A page, content: { application/json: { schema: { $ref: "#/components/schemas/JobPage" } } } }
        "400": { $ref: "#/components/responses/InvalidParameter" }
        "401": { $ref: "#/components/responses/Unauthorized" }
        "503": { $ref: "#/components/responses/Unavailable" }
  /jobs/{id}:
    get:
      operationId: getJob
      summary: Read a job
      parameters: [ { $ref: "#/components/parameters/JobID" } ]
      responses:
        "200": { description: The job, content: { application/json: { schema: { $ref: "#/components/schemas/Job" } } } }
        "400": { $ref: "#/components/responses/InvalidParameter" }
        "401": { $ref: "#/components/responses/Unauthorized" }
        "404": { $ref: "#/components/responses/NotFound" }
        "503": { $ref: "#/components/responses/Unavailable" }
  /jobs/{id}/cancel:
    post:
      operationId: cancelJob
      summary: Cancel a job (QUEUED becomes CANCELLED at once; a RUNNING job's runner is told to stop it)
      parameters: [ { $ref: "#/components/parameters/JobID" } ]
      responses:
        "202": { description: Cancelled or cancel requested, content: { application/json: { schema: { $ref: "#/components/schemas/Job" } } } }
        "400": { $ref: "#/components/responses/InvalidParameter" }
        "401": { $ref: "#/components/responses/Unauthorized" }
        "404": { $ref: "#/components/responses/NotFound" }
        "409": { description: JOB_FINISHED, content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
        "503": { $ref: "#/components/responses/Unavailable" }
  /jobs/{id}/retry:
    post:
      operationId: retryJob
      summary: Queue a FAILED or CANCELLED job again with a fresh attempt budget
      parameters: [ { $ref: "#/components/parameters/JobID" } ]
      responses:
        "202": { description: Queued again, content: { application/json: { schema: { $ref: "#/components/schemas/Job" } } } }
        "400": { $ref: "#/components/responses/InvalidParameter" }
        "401": { $ref: "#/components/responses/Unauthorized" }
        "404": { $ref: "#/components/responses/NotFound" }
        "409": { description: JOB_NOT_RETRYABLE or UNIQUE_KEY_QUEUED, content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
        "503": { $ref: "#/components/responses/Unavailable" }
  /jobs/{id}/events:
    get:
      operationId: followJob
      summary: Follow a job as Server-Sent Events until it finishes
      description: |
        `event: job` with the job resource now and on every change of status or progress (runners announce
        progress at most every 500 ms per job); `event: end` after the job finished, then the stream closes.
      parameters: [ { $ref: "#/components/parameters/JobID" } ]
      responses:
        "200": { description: An event stream, content: { text/event-stream: { schema: { type: string } } } }
        "400": { $ref: "#/components/responses/InvalidParameter" }
        "401": { $ref: "#/components/responses/Unauthorized" }
        "404": { $ref: "#/components/responses/NotFound" }
        "503": { $ref: "#/components/responses/Unavailable" }
  /jobs/settlement:
    post:
      operationId: submitSettlement
      summary: Settle PAID transactions of a date range per merchant per day, with a CSV of the result
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              required: [from, to]
              properties:
                from: { type: string, format: date, examples: ["2025-01-01"] }
                to: { type: string, format: date, description: "from <= to, at most 366 days later" }
                batch_size: { type: integer, minimum: 100, maximum: 1000000, description: Transactions per slice (BATCH_SIZE) }
                parallelism: { type: integer, minimum: 1, maximum: 16, default: 2 }
      responses:
        "202": { description: Queued, content: { application/json: { schema: { type: object, properties: { job_id: { type: integer }, status: { type: string, const: QUEUED } } } } } }
        "400": { $ref: "#/components/responses/InvalidJSON" }
        "401": { $ref: "#/components/responses/Unauthorized" }
        "422": { description: INVALID_FIELD naming from or to, content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
        "503": { $ref: "#/components/responses/Unavailable" }
  /downloads/{job_id}.csv:
    get:
      operationId: downloadSettlement
      summary: The settlement CSV (merchant_id,date,gross_cents,fee_cents,net_cents,txn_count), streamed
      parameters: [ { name: job_id, in: path, required: true, schema: { type: integer, minimum: 1 } } ]
      responses:
        "200": { description: The CSV, content: { text/csv: { schema: { type: string } } } }
        "400": { $ref: "#/components/responses/InvalidParameter" }
        "401": { $ref: "#/components/responses/Unauthorized" }
        "404": { description: No such job, or the job has no file, content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
        "409": { description: NOT_READY while the job is queued or running, content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
        "503": { $ref: "#/components/responses/Unavailable" }
  /orders:
    post:
      operationId: placeOrder
      summary: Order a product; its stock is taken in the same statement, so concurrent orders never oversell
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              required: [product_id, quantity, buyer_id]
              properties:
                product_id: { type: integer, minimum: 1 }
                quantity: { type: integer, minimum: 1, maximum: 1000000 }
                buyer_id: { type: string, minLength: 1, maxLength: 128 }
      responses:
        "200": { description: The order, PENDING, content: { application/json: { schema: { $ref: "#/components/schemas/Order" } } } }
        "400": { $ref: "#/components/responses/InvalidJSON" }
        "401": { $ref: "#/components/responses/Unauthorized" }
        "404": { $ref: "#/components/responses/NotFound" }
        "409": { description: OUT_OF_STOCK, content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
        "422": { description: INVALID_FIELD, content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
        "503": { $ref: "#/components/responses/Unavailable" }
  /orders/{id}:
    get:
      operationId: getOrder
      summary: Read an order
      parameters: [ { $ref: "#/components/parameters/OrderID" } ]
      responses:
        "200": { description: The order, content: { application/json: { schema: { $ref: "#/components/schemas/Order" } } } }
        "400": { $ref: "#/components/responses/InvalidParameter" }
        "401": { $ref: "#/components/responses/Unauthorized" }
        "404": { $ref: "#/components/responses/NotFound" }
        "503": { $ref: "#/components/responses/Unavailable" }
  /orders/{id}/pay:
    post:
      operationId: payOrder
      summary: Mark an order PAID; in the same transaction a report.refresh job is queued (one per burst)
      parameters: [ { $ref: "#/components/parameters/OrderID" } ]
      responses:
        "200": { description: The order, PAID, content: { application/json: { schema: { $ref: "#/components/schemas/Order" } } } }
        "400": { $ref: "#/components/responses/InvalidParameter" }
        "401": { $ref: "#/components/responses/Unauthorized" }
        "404": { $ref: "#/components/responses/NotFound" }
        "409": { description: ALREADY_PAID, content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
        "503": { $ref: "#/components/responses/Unavailable" }
  /reports/sales:
    get:
      operationId: salesReport
      summary: The sales report, as the last report.refresh left it
      responses:
        "200":
          description: The report
          content:
            application/json:
              schema:
                type: object
                properties:
                  total_revenue_cents: { type: integer }
                  paid_orders: { type: integer }
                  products_sold: { type: integer }
                  unique_customers: { type: integer }
                  by_category: { type: object, additionalProperties: { type: object, properties: { revenue_cents: { type: integer }, orders: { type: integer }, quantity: { type: integer } } } }
                  updated_at: { type: string, format: date-time }
        "401": { $ref: "#/components/responses/Unauthorized" }
        "503": { $ref: "#/components/responses/Unavailable" }
  /health:
    get:
      operationId: health
      summary: The process is alive (does not touch the database)
      security: []
      responses:
        "200": { description: Alive, content: { application/json: { schema: { type: object, properties: { status: { type: string, const: ok } } } } } }
  /ready:
    get:
      operationId: ready
      summary: The database answers and its schema is at the version this build expects
      security: []
      responses:
        "200": { description: Ready, content: { application/json: { schema: { type: object, properties: { status: { type: string }, schema_version: { type: integer } } } } } }
        "503": { description: NOT_READY with the reason, content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
  /metrics:
    get:
      operationId: metrics
      summary: Prometheus metrics (HTTP requests and latency by route; QUEUED and RUNNING jobs per queue)
      responses:
        "200": { description: Prometheus text format, content: { text/plain: { schema: { type: string } } } }
        "401": { $ref: "#/components/responses/Unauthorized" }
  /openapi.yaml:
    get:
      operationId: openAPI
      summary: This document
      responses:
        "200": { description: OpenAPI 3.1, content: { application/yaml: { schema: { type: string } } } }
        "401": { $ref: "#/components/responses/Unauthorized" }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }
  parameters:
    JobID: { name: id, in: path, required: true, schema: { type: integer, minimum: 1 } }
    OrderID: { name: id, in: path, required: true, schema: { type: string, format: uuid } }
  responses:
    InvalidJSON: { description: "INVALID_JSON: the body is not a JSON object", content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
    InvalidParameter: { description: "INVALID_PARAMETER: a path or query parameter cannot be used", content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
    Unauthorized: { description: "UNAUTHORIZED: missing or wrong bearer token", content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
    NotFound: { description: NOT_FOUND, content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
    TooLarge: { description: "PAYLOAD_TOO_LARGE: the body is over 1 MiB", content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
    Unavailable: { description: "DATABASE_UNAVAILABLE: PostgreSQL did not answer within 2 s", content: { application/json: { schema: { $ref: "#/components/schemas/Error" } } } }
  schemas:
    Error:
      type: object
      required: [error, message]
      properties:
        error: { type: string, examples: [NOT_FOUND, INVALID_FIELD, UNKNOWN_KIND] }
        message: { type: string }
    Status:
      type: string
      enum: [QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED]
    NewJob:
      type: object
      additionalProperties: false
      required: [kind]
      properties:
        kind: { type: string, minLength: 1, maxLength: 128 }
        args: { type: object, default: {} }
        queue: { type: string, minLength: 1, maxLength: 128, default: default }
        priority: { type: integer, minimum: -32768, maximum: 32767, default: 0, description: Lower runs first }
        run_at: { type: string, format: date-time, description: Not run before this time }
        max_attempts: { type: integer, minimum: 1, maximum: 1000, default: 25 }
        unique_key: { type: string, maxLength: 256, description: At most one QUEUED job per key }
    Job:
      type: object
      properties:
        job_id: { type: integer }
        kind: { type: string }
        queue: { type: string }
        status: { $ref: "#/components/schemas/Status" }
        progress: { type: number, description: Percent, from processed and total }
        processed: { type: integer }
        total: { type: [integer, "null"] }
        attempt: { type: integer }
        max_attempts: { type: integer }
        priority: { type: integer }
        args: { type: object }
        unique_key: { type: [string, "null"] }
        run_at: { type: string, format: date-time }
        created_at: { type: string, format: date-time }
        started_at: { type: [string, "null"], format: date-time }
        finished_at: { type: [string, "null"], format: date-time }
        cancel_requested_at: { type: [string, "null"], format: date-time }
        errors: { type: array, items: { type: object, properties: { attempt: { type: integer }, at: { type: string }, error: { type: string } } } }
        result: { description: What the handler returned, or null }
        meta: { type: object, description: request_id and other submitter data }
        download_url: { type: [string, "null"], description: Present when the job has an artifact }
    Order:
      type: object
      properties:
        order_id: { type: string, format: uuid }
        product_id: { type: integer }
        buyer_id: { type: string }
        quantity: { type: integer }
        total_amount_cents: { type: integer }
        status: { type: string, enum: [PENDING, PAID] }
        created_at: { type: string, format: date-time }
        paid_at: { type: [string, "null"], format: date-time }
    JobPage:
      type: object
      properties:
        jobs: { type: array, items: { $ref: "#/components/schemas/Job" } }
        next: { type: [string, "null"], description: Pass as `after` for the next page; null on the last page }
"""#
}
