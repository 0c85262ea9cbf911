// Stylesheets imported for esbuild to bundle into app-HASH.css.
declare module "*.css";
