// ESLint (flat config): typescript-eslint's recommended rules and sorted imports,
// over lib, test, bench and sample; `npm run lint` (part of `npm test`) runs it
// with Prettier's check. Rules off or relaxed here are relaxed as `nest new` does.
import simpleImportSort from 'eslint-plugin-simple-import-sort';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.scratch/**', 'bench/results/**', '**/node_modules/**'] },
  ...tseslint.configs.recommended,
  {
    plugins: { 'simple-import-sort': simpleImportSort },
    rules: {
      'simple-import-sort/imports': 'error',
      'simple-import-sort/exports': 'error',
      // generic signatures (service definitions, Nest's ClientProxy) need `any`, as Nest's own starter allows
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      '@typescript-eslint/no-unused-expressions': ['error', { allowShortCircuit: true, allowTernary: true }],
    },
  },
);
