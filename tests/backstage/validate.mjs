// Validates Backstage catalog files the way Backstage's catalog does before it accepts an entity:
// the default entity policies (envelope and schema, default namespace, no foreign root fields,
// field formats: names, annotations, labels, tags, links), then the kind's own validator
// (BuiltinKindsEntityProcessor). Prints one JSON line per entity: {file, ok, kind, error}.
import { readFileSync } from "node:fs";
import * as catalogModel from "@backstage/catalog-model";
import { parseAllDocuments } from "yaml";

const {
  DefaultNamespaceEntityPolicy,
  EntityPolicies,
  FieldFormatEntityPolicy,
  NoForeignRootFieldsEntityPolicy,
  SchemaValidEntityPolicy,
} = catalogModel;
const policy = EntityPolicies.allOf([
  new SchemaValidEntityPolicy(),
  new DefaultNamespaceEntityPolicy(),
  new NoForeignRootFieldsEntityPolicy(),
  new FieldFormatEntityPolicy(),
]);
// every built-in kind's validator (componentEntityV1alpha1Validator, apiEntityV1alpha1Validator...)
const kinds = Object.entries(catalogModel)
  .filter(([name]) => name.endsWith("EntityV1alpha1Validator"))
  .map(([, validator]) => validator);

for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    const result = { file, ok: false, kind: null, error: null };
    try {
      if (doc.errors.length) throw new Error(`YAML: ${doc.errors[0].message}`);
      const entity = await policy.enforce(doc.toJS());
      result.kind = entity.kind;
      let known = false;
      for (const validator of kinds) {
        known = (await validator.check(entity)) || known;
      }
      if (!known) throw new Error(`no validator accepts kind ${entity.kind} (${entity.apiVersion})`);
      result.ok = true;
    } catch (error) {
      result.error = String(error.message ?? error);
    }
    console.log(JSON.stringify(result));
  }
}
