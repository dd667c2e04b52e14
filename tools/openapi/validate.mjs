// Validates each OpenAPI document named on the command line with @apidevtools/swagger-parser
// (an implementation independent of ours, pinned in package-lock.json): the document's shape
// against the OpenAPI 3 schema, and every $ref resolved. Exits non-zero naming the file.
import SwaggerParser from "@apidevtools/swagger-parser";

let failed = 0;
for (const file of process.argv.slice(2)) {
  try {
    const api = await SwaggerParser.validate(file);
    console.log(`${file}: valid OpenAPI ${api.openapi}, ${Object.keys(api.paths).length} paths`);
  } catch (e) {
    console.error(`${file}: ${e.message}`);
    failed = 1;
  }
}
process.exit(failed);
