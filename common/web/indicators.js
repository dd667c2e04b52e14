// The indicators' titles in Nepali, for the hub's and the federal tier's pages: the APIs
// give the catalogue's English title, which the pages show as it is in English.
import { current } from "/common/i18n.js";

const NE = {
  participants_registered: "अवधिमा दर्ता भएका व्यक्ति",
  returnees_registered: "अवधिमा दर्ता भएका फर्किएका आप्रवासी",
  persons_served: "कम्तीमा एउटा सेवा पाएका व्यक्ति",
  services_delivered: "प्रदान गरिएका सेवा",
  enterprises_supported: "सुरु वा विस्तार गरिएका उद्यम",
  jobs_created: "अवधिमा सहयोग पाएका उद्यमका कर्मचारी",
  enterprises_active: "अवधिको अन्त्यमा सञ्चालनमा रहेका सहयोग पाएका उद्यम (अनुपात)",
  seed_funding_npr: "प्रदान गरिएको बीउ पुँजी, रुपैयाँ",
  enterprises_with_loan: "सञ्चालकले ऋण पाएका सहयोग प्राप्त उद्यम (अनुपात)",
  bank_accounts_opened: "बैंक खाता सेवा पाएका व्यक्ति",
  no_remigration_intention: "फेरि विदेश नजाने सोच भएका फर्किएका आप्रवासी (अनुपात)",
  referrals_pending: "९० दिनभित्र सेवा नपाएका सिफारिस",
  services_unavailable: "सिफारिस गरिएका तर कुनै स्थानीय प्रदायक नभएका सेवा प्रकार",
  reporting_completeness: "महिना बन्द गरेका सहभागी स्थानीय तह (अनुपात)",
  reporting_timeliness: "महिना सकिएको १५ दिनभित्र बन्द गरेका सहभागी स्थानीय तह (अनुपात)",
};

// The title of an indicator of the catalogue ({code, title}) in the page's language.
export function indicatorTitle(ind) {
  if (!ind) return "";
  return (current() === "ne" && NE[ind.code]) || ind.title || ind.code;
}
