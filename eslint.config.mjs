// Type-aware linting: typescript-eslint needs TypeScript's compiler API, hence TS 5.9 (not 7).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// Node's CommonJS globals for the plain JS in scripts/ and demo/ (no `globals` package installed).
const nodeGlobals = Object.fromEntries(
  [
    "require",
    "module",
    "exports",
    "process",
    "__dirname",
    "__filename",
    "console",
    "Buffer",
    "URL",
    "setTimeout",
    "clearTimeout",
    "setInterval",
    "clearInterval",
    "setImmediate",
    "clearImmediate",
  ].map((name) => [name, "readonly"]),
);

/**
 * Lints the inline editor script of each node's .html: the text outside <script type="text/javascript">
 * blocks becomes blank lines, so reported lines and columns are the html file's own.
 */
const editorHtml = {
  meta: { name: "trading-broker/editor-html" },
  preprocess(text) {
    const lines = text.split("\n");
    let inside = false;
    const kept = lines.map((line) => {
      if (inside && /^\s*<\/script>/.test(line)) inside = false;
      const keep = inside;
      if (/^\s*<script type="text\/javascript">\s*$/.test(line)) inside = true;
      return keep ? line : "";
    });
    return [{ text: kept.join("\n"), filename: "editor.js" }];
  },
  postprocess(messages) {
    return messages.flat();
  },
  supportsAutofix: false,
};

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", ".node-red/**", "coverage/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": "error",
      // `import x = require()` is how TypeScript imports an `export =` module (every node file).
      "@typescript-eslint/no-require-imports": ["error", { allowAsImport: true }],
    },
  },
  {
    files: ["test/**/*.ts", "bench/**/*.ts", "scripts/**/*.ts"],
    rules: {
      "no-console": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
  // Plain JavaScript (scripts/*.js, demo/settings.js, this file) is outside tsconfig: no type-aware rules.
  {
    files: ["**/*.js", "**/*.cjs", "**/*.mjs"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: nodeGlobals },
    rules: { "no-console": "off" },
  },
  {
    files: ["**/*.js", "**/*.cjs"],
    languageOptions: { sourceType: "commonjs" },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  { files: ["nodes/**/*.html"], processor: editorHtml },
  // Editor code (resources/, and nodes' html through the processor above) runs in the browser as a
  // classic script beside Node-RED's editor, which provides RED and jQuery; Node's globals are
  // switched off there so a stray `require` is caught.
  {
    files: ["resources/**/*.js", "nodes/**/*.html/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      sourceType: "script",
      globals: {
        ...Object.fromEntries(Object.keys(nodeGlobals).map((name) => [name, "off"])),
        window: "readonly",
        document: "readonly",
        console: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        URL: "readonly",
        RED: "readonly",
        $: "readonly",
        jQuery: "readonly",
      },
    },
    rules: {
      "no-console": "error",
      "@typescript-eslint/no-require-imports": "error",
      // ES5 editor code keeps `var self = this` for jQuery callbacks, as Node-RED's own nodes do.
      "@typescript-eslint/no-this-alias": "off",
      "no-implicit-globals": "error",
      "no-undef": "error",
      eqeqeq: "error",
    },
  },
  { files: ["resources/**/*.js"], rules: { strict: ["error", "function"] } },
);
